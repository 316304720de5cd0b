import XCTest

final class SoundlocOutputPlaceholder: XCTestCase {}
