import XCTest

final class SoundlocCLIPlaceholder: XCTestCase {}
