import ArgumentParser

struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "features", abstract: "Log-mel windows of a WAV file.")
    func run() throws {}
}
