import ArgumentParser
import Foundation
import SoundlocBase

/// What the commands print. Class names, metadata, file names, device names and socket text come from
/// files and peers, so everything printed passes `TerminalText.escaped`: a control character in any of
/// them shows as `\u{1b}` instead of driving the terminal. `\n` in `text` separates lines the command itself
/// composed; a value that may hold a newline of its own is escaped before it is put in (see `inspect`).
func say(_ text: String, terminator: String = "\n") {
    print(TerminalText.escapedLines(text), terminator: terminator)
}

/// `say` for standard error (progress and notes that are not the command's output).
func sayToStandardError(_ text: String) {
    FileHandle.standardError.write(Data((TerminalText.escapedLines(text) + "\n").utf8))
}

extension Soundloc {
    /// ArgumentParser's entry point with one change: our errors reach stderr escaped and on one line, since
    /// their messages quote file names, metadata, chunk ids and peer text. ArgumentParser's own errors
    /// (usage, --help) are left as they are: they hold only the command line the user typed.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: terminalSafe(error))
        }
    }

    static func terminalSafe(_ error: Error) -> Error {
        switch error {
        case let validation as ValidationError: return ValidationError(TerminalText.escaped(validation.message))
        case is ExitCode, is CleanExit: return error
        default:
            if String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") { return error }
            return EscapedError(description: TerminalText.escaped("\(error)"))
        }
    }
}

/// An error whose message was made safe for a terminal.
struct EscapedError: Error, CustomStringConvertible {
    var description: String
}
