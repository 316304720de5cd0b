// The fuzzing harness of every target in SoundlocFuzz, in two builds:
// - with -DSOUNDLOC_LIBFUZZER and -sanitize=fuzzer (Tools/fuzz.sh): libFuzzer's coverage-guided engine, which owns
//   main(); the environment variable SOUNDLOC_FUZZ_TARGET names the target;
// - a plain build: `soundloc-fuzz TARGET FILE|DIR...` replays inputs (a crash found by libFuzzer, without
//   sanitizers), and `--mutate N` runs N seeded mutations of them, the fallback where libFuzzer is not available.
import Foundation
import SoundlocFuzz

#if SOUNDLOC_LIBFUZZER

// Set once by LLVMFuzzerInitialize, before libFuzzer runs any input (on its one thread).
nonisolated(unsafe) private var selectedTarget: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutableRawPointer) -> CInt {
    guard let name = ProcessInfo.processInfo.environment["SOUNDLOC_FUZZ_TARGET"], let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("soundloc-fuzz: set SOUNDLOC_FUZZ_TARGET to one of: \(names)\n".utf8))
        exit(2)
    }
    selectedTarget = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    _ = selectedTarget!.run(bytes)
    return 0
}

#else

@main
struct FuzzDriver {
    static let usage = """
        usage: soundloc-fuzz TARGET [--mutate N] [--seed S] [--dict FILE] FILE|DIR...
          replays every input file (directories: every file in them) through TARGET's parser;
          with --mutate, then runs N seeded mutations of them (the fallback fuzzer), keeping an input that
          crashes as ./crash-TARGET-mutation.
          targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))
        """

    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data("soundloc-fuzz: \(message)\n\(usage)\n".utf8))
            exit(2)
        }
        func option(_ name: String) -> String? {
            guard let i = arguments.firstIndex(of: name) else { return nil }
            guard i + 1 < arguments.count else { fail("\(name) needs a value") }
            defer { arguments.removeSubrange(i...(i + 1)) }
            return arguments[i + 1]
        }
        func number<T: FixedWidthInteger>(_ name: String, default value: T) -> T {
            guard let text = option(name) else { return value }
            guard let n = T(text), n >= 0 else { fail("\(name) takes a non-negative integer") }
            return n
        }
        func read(_ path: String) -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
            return [UInt8](data)
        }
        let mutations = number("--mutate", default: 0)
        let seed = number("--seed", default: UInt64(1))
        let dictionary = option("--dict").map { readFuzzDictionary(String(decoding: read($0), as: UTF8.self)) } ?? []
        guard let name = arguments.first else { fail("no target") }
        guard let target = FuzzTarget(rawValue: name) else { fail("unknown target \(name)") }
        let inputs = arguments.dropFirst().flatMap(files)
        guard !inputs.isEmpty else { fail("no input files") }

        let corpus = inputs.map(read)
        for (path, bytes) in zip(inputs, corpus) {
            switch CrashKeeper.run(target, bytes) {
            case .accepted: print("\(path): accepted")
            case let .refused(why): print("\(path): refused: \(why.split(whereSeparator: \.isNewline).joined(separator: " "))")
            }
        }
        guard mutations > 0 else { return }
        CrashKeeper.install(path: "crash-\(target.rawValue)-mutation")
        var mutator = FuzzMutator(seed: seed, dictionary: dictionary)
        var accepted = 0
        let start = Date()
        for i in 0..<mutations {
            if CrashKeeper.run(target, mutator.mutate(corpus[i % corpus.count], others: corpus)).isAccepted { accepted += 1 }
        }
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "%@: %d mutations in %.1f s (%.0f exec/s), %d accepted, no crash",
                     target.rawValue, mutations, seconds, Double(mutations) / max(seconds, 1e-9), accepted))
    }

    /// A path's regular files: itself, or a directory's files sorted by name.
    static func files(_ path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [path] }
        guard isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { "\(path)/\($0)" }.filter { entry in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: entry, isDirectory: &isFolder) && !isFolder.boolValue
        }
    }
}

/// Keeps the input being run so that a crash leaves it behind: a trap or fault signal writes it to a file from a
/// buffer prepared beforehand (only async-signal-safe calls in the handler), then lets the signal kill the process.
enum CrashKeeper {
    nonisolated(unsafe) private static var current = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 0)
    nonisolated(unsafe) private static var length = 0
    nonisolated(unsafe) private static var path: UnsafeMutablePointer<CChar>?

    static func install(path file: String) {
        path = strdup(file)
        for signal in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                if let path = CrashKeeper.path {
                    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                    if fd >= 0 {
                        _ = write(fd, CrashKeeper.current.baseAddress, CrashKeeper.length)
                        close(fd)
                    }
                }
                Glibc.signal(number, SIG_DFL)
                raise(number)
            }
            sigaction(signal, &action, nil)
        }
    }

    static func run(_ target: FuzzTarget, _ bytes: [UInt8]) -> FuzzOutcome {
        if bytes.count > current.count {
            current.deallocate()
            current = .allocate(capacity: max(bytes.count, 2 * current.count))
        }
        _ = current.initialize(from: bytes)
        length = bytes.count
        return target.run(bytes)
    }
}

#endif
