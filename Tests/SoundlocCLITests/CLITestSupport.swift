import Foundation
import XCTest

/// Runs the built `soundloc` executable (it sits beside the test bundle) and captures what it prints.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLI {
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("soundloc")
    }

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs `soundloc` with `arguments`. With a `hangGuard` (seconds, keep it generous: it is not a speed
    /// limit), a child still running after it is killed and the test fails instead of hanging.
    static func run(_ arguments: [String], environment: [String: String] = [:], hangGuard: Double? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws -> CLIResult {
        let child = try start(arguments, environment: environment)
        return child.finish(hangGuard: hangGuard, file: file, line: line)
    }

    /// Starts `soundloc` with `arguments`, its output collected in the background.
    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> RunningCLI {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        return RunningCLI(process: process, exited: exited, stdout: PipeReader(out), stderr: PipeReader(err))
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("soundloc-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// A test case with a fresh temporary `directory` per test (removed afterwards) and `write` to put files in it.
class CLIDirectoryTestCase: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws { directory = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// Writes `bytes` to `name` in `directory`; returns its path.
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}

/// A `soundloc` child process started by `CLI.start`.
struct RunningCLI {
    let process: Process
    let exited: DispatchSemaphore
    let stdout: PipeReader
    let stderr: PipeReader

    /// Waits for the child to exit, killing it after `hangGuard` seconds (a test failure) if given.
    func finish(hangGuard: Double? = nil, file: StaticString = #filePath, line: UInt = #line) -> CLIResult {
        if let hangGuard, exited.wait(timeout: .now() + hangGuard) == .timedOut {
            XCTFail("soundloc \(process.arguments ?? []) still running after \(hangGuard) s: killed", file: file, line: line)
            kill(process.processIdentifier, SIGKILL)
            exited.wait()
        } else if hangGuard == nil {
            exited.wait()
        }
        return CLIResult(status: process.terminationStatus, stdout: stdout.text(), stderr: stderr.text())
    }
}

/// Drains a pipe on its own thread, so a chatty child never blocks on a full pipe.
final class PipeReader: @unchecked Sendable {  // unchecked: data is written by the reader thread before `done` is signalled and read after
    private let done = DispatchSemaphore(value: 0)
    private var data = Data()

    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    /// Everything the child wrote, once it closed its end.
    func text() -> String {
        done.wait()
        done.signal()
        return String(decoding: data, as: UTF8.self)
    }
}
