import Foundation
import SoundlocEngine

extension ApplianceConfig {
    /// Why `engine.kernels` cannot be used on this machine; nil when it can (always for `auto`).
    public var kernelProblem: String? {
        let name = engine.kernels
        guard name != "auto", !Int8Kernels.isSupported(name) else { return nil }
        return "\(name) is not supported by this CPU (it runs: \(Int8Kernels.supportedNames.joined(separator: ", ")); auto picks the best)"
    }

    /// Makes `engine.kernels` the int8 kernels of this process before a model is loaded. `SOUNDLOC_KERNELS` in the
    /// environment, when set, wins (and is left for the kernels to check); `auto` leaves the choice to them.
    /// `file` labels the error.
    public func applyKernelChoice(file: String) throws {
        let name = engine.kernels
        guard name != "auto", (ProcessInfo.processInfo.environment["SOUNDLOC_KERNELS"] ?? "").isEmpty else { return }
        if let kernelProblem { throw ConfigError(file: file, key: "engine.kernels", message: kernelProblem) }
        setenv("SOUNDLOC_KERNELS", name, 1)
    }
}
