import ArgumentParser
import SoundlocPipeline

/// The --threads check every command shares: the board config's range (engine.threads), one message.
enum ThreadCount {
    static let range = ApplianceConfig.Engine.threadRange

    static func validate(_ threads: Int?, option: String = "--threads") throws {
        guard let threads, !range.contains(threads) else { return }
        throw ValidationError("\(option) must be in \(range.lowerBound)...\(range.upperBound), got \(threads)")
    }
}
