import XCTest

final class SoundlocEnginePlaceholder: XCTestCase {}
