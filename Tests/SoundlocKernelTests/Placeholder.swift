import XCTest

final class KernelPlaceholder: XCTestCase {}
