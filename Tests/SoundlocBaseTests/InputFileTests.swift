import Foundation
import SoundlocBase
import SoundlocTestSupport
import XCTest

/// Every file soundloc reads goes through `InputFile`: regular files only, refused before open() otherwise.
final class InputFileTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-input-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    /// The error `body` throws for `path`, run under a hang guard (a FIFO opened the plain way never returns).
    private func refusal(_ path: String, file: StaticString = #filePath, line: UInt = #line,
                         _ body: @escaping @Sendable () throws -> Void) -> InputFileError? {
        let outcome = runWithHangGuard(unblock: { unblockFIFO(path) }, body)
        guard case let .threw(error) = outcome else {
            XCTFail("expected a prompt error for \(path), got \(outcome)", file: file, line: line)
            return nil
        }
        guard let refused = error as? InputFileError else {
            XCTFail("unexpected error type: \(error)", file: file, line: line)
            return nil
        }
        return refused
    }

    func testFIFOIsRefusedInsteadOfBlocking() throws {
        let fifo = directory.appendingPathComponent("model.safetensors").path
        try makeFIFO(fifo)
        for call in [{ _ = try InputFile.openForReading(fifo) }, { _ = try InputFile.read(fifo, limit: 100) },
                     { try InputFile.checkRegular(fifo) }] as [@Sendable () throws -> Void] {
            let error = refusal(fifo, call)
            XCTAssertEqual(error, InputFileError(path: fifo, reason: "is a FIFO (named pipe), not a regular file"))
            XCTAssertEqual(error?.description, "cannot read \(fifo): is a FIFO (named pipe), not a regular file")
        }
    }

    func testDirectoriesDevicesAndMissingFilesAreRefused() throws {
        let folder = directory.path
        XCTAssertEqual(refusal(folder) { _ = try InputFile.read(folder, limit: 100) }?.reason, "is a directory")
        XCTAssertEqual(refusal("/dev/null") { _ = try InputFile.read("/dev/null", limit: 100) }?.reason,
                       "is a character device, not a regular file")
        XCTAssertEqual(refusal("/dev/zero") { _ = try InputFile.openForReading("/dev/zero") }?.reason,
                       "is a character device, not a regular file")
        let missing = directory.appendingPathComponent("missing.wav").path
        XCTAssertEqual(refusal(missing) { _ = try InputFile.read(missing, limit: 100) }?.reason, "no such file")
        // A symbolic link is judged by what it points to.
        let link = directory.appendingPathComponent("link.wav").path
        XCTAssertEqual(symlink("/dev/zero", link), 0)
        XCTAssertEqual(refusal(link) { _ = try InputFile.read(link, limit: 100) }?.reason, "is a character device, not a regular file")
    }

    func testRegularFilesAreReadWhole() throws {
        let path = directory.appendingPathComponent("a.bin").path
        let content = (0..<10000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(content).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try InputFile.read(path, limit: 10000), content)
        XCTAssertEqual(try InputFile.checkRegular(path), 10000)
        let empty = directory.appendingPathComponent("empty").path
        try Data().write(to: URL(fileURLWithPath: empty))
        XCTAssertEqual(try InputFile.read(empty, limit: 0), [])
        let opened = try InputFile.openForReading(path)
        defer { close(opened.descriptor) }
        XCTAssertEqual(opened.size, 10000)
        XCTAssertEqual(fcntl(opened.descriptor, F_GETFL) & O_NONBLOCK, 0, "the descriptor handed out blocks normally")
    }

    func testFilesOverTheLimitAreRefusedUnread() throws {
        let path = directory.appendingPathComponent("big.bin").path
        try Data(count: 4097).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try InputFile.read(path, limit: 4096)) { error in
            XCTAssertEqual((error as? InputFileError)?.reason, "larger than the 4096 bytes allowed for this kind of file")
        }
    }
}
