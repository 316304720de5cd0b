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
        ])
}
