import ArgumentParser
import Logging

@main
struct Soundloc: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soundloc",
        abstract: "Which objects in view are sounding, and where: DSOL on a camera and a microphone.",
        version: SoundlocVersion.release,
        subcommands: [
            DemoCommand.self,
            RunCommand.self,
            FeaturesCommand.self,
            BenchCommand.self,
            DevicesCommand.self,
            CheckCommand.self,
            CaptureCheckCommand.self,
            InspectCommand.self,
            InferCommand.self,
            QuantizeCommand.self,
            EvalCommand.self,
            WatchCommand.self,
            ServeFakeCommand.self,
        ])
}

/// The release soundloc reports in its socket banner and `--version`.
enum SoundlocVersion {
    static let release = "0.1.0"
}
