import XCTest

final class SoundlocCapturePlaceholder: XCTestCase {}
