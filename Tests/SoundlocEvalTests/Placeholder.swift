import XCTest

final class EvalPlaceholder: XCTestCase {}
