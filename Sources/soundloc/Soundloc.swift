import ArgumentParser
import Logging

@main
struct Soundloc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soundloc",
        abstract: "Which objects in view are sounding, and where: DSOL on a camera and a microphone.",
        subcommands: [
            DemoCommand.self,
            FeaturesCommand.self,
            BenchCommand.self,
            WatchCommand.self,
            ServeFakeCommand.self,
        ],
        version: SoundlocVersion.release)
}

/// The release soundloc reports in its socket banner and `--version`.
enum SoundlocVersion {
    static let release = "0.1.0"
}
