import XCTest

final class SoundlocFeaturesPlaceholder: XCTestCase {}
