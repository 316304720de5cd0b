import Foundation
import SoundlocEngine

extension ApplianceConfig {
    /// Why `engine.kernels` cannot be used on this machine; nil when it can (always for `auto`).
    public var kernelProblem: String? {
        let name = engine.kernels
        guard name != "auto", !Int8Kernels.isSupported(name) else { return nil }
        return "\(name) is not supported by this CPU (it runs: \(Int8Kernels.supportedNames.joined(separator: ", ")); auto picks the best; its features: \(Int8Kernels.cpuFeatures))"
    }

    /// Makes `engine.kernels` the int8 kernels of this process before a model is loaded (`auto`: the best the CPU
    /// runs). `SOUNDLOC_KERNELS` in the environment, when set, still wins. `file` labels the error.
    public func applyKernelChoice(file: String) throws {
        if let kernelProblem { throw ConfigError(file: file, key: "engine.kernels", message: kernelProblem) }
        try Int8Kernels.setDefault(engine.kernels == "auto" ? nil : engine.kernels)
    }
}
