import ArgumentParser
import Foundation
import SoundlocBase
import SoundlocDSOL
import SoundlocEngine

/// `soundloc inspect MODEL`: what a model file holds and whether it is intact.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model file's classes, metadata, tensors and parameter count, and verify its checksum.")

    @Argument(help: "Model file (.safetensors).")
    var model: String

    @Flag(name: .long, help: "Omit the per-tensor table.")
    var noTensors = false

    func run() throws {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: model) } catch let e as ModelFileError {
            line("\(model): INVALID: \(e)")
            throw ExitCode.failure
        }
        var problems = [String]()
        line("file: \(model) (\(file.fileSize) bytes, header \(file.headerLength) bytes, \(file.tensors.count) tensors)")

        let metadata: ModelMetadata?
        do { metadata = try ModelMetadata(file.metadata) } catch {
            metadata = nil
            problems.append("metadata: \(error)")
        }
        if let m = metadata {
            line("format: \(ModelMetadata.format) v\(ModelMetadata.formatVersion), \(ModelMetadata.arch), \(m.precision)")
            line("width \(m.width) (feature size D = \(m.featureDim)), embed_dim \(m.embedDim)")
            line("classes (\(m.numClasses)): \(m.classes.joined(separator: ", "))")
            if let map = m.clusterToClass { line("cluster_to_class: \(map)") }
            line("image: \(m.imageSize)x\(m.imageSize), mean \(m.imageMean), std \(m.imageStd)")
            let a = m.audio
            line("audio: \(a.sampleRate) Hz, n_fft \(a.nFFT), hop \(a.hop), \(a.melBands) mel bands to \(Int(a.maxFrequency)) Hz, top_db \(a.topDB), \(a.frames) frames")
            if !m.source.isEmpty { line("source: \(m.source)") }
        } else {
            line("metadata (raw):")
            for key in file.metadata.keys.sorted() { line("  \(key): \(file.metadata[key]!)") }
        }

        do {
            try file.verifyChecksum()
            line("checksum: ok (\(file.metadata["checksum"]!))")
        } catch {
            line("checksum: FAILED: \(error)")
            problems.append("checksum: \(error)")
        }

        if let m = metadata, m.precision == .int8 {
            line("calibration: \(file.metadata["calibration_method"] ?? "?") on \(file.metadata["calibration_data"] ?? "?")")
            line("fp32 source checksum: \(file.metadata["fp32_checksum"] ?? "?")")
            do { line("int8 kernels: \(try Int8Kernels.activate()) (set SOUNDLOC_KERNELS=\(Int8Kernels.names.joined(separator: "|")) to force)") } catch {
                line("int8 kernels: UNAVAILABLE: \(error)")
                problems.append("\(error)")
            }
        }
        if let m = metadata {
            do {
                try file.validate(against: DSOLModel.tensorSpecs(for: m))
                for t in file.tensors where t.dtype == .f32 { _ = try file.floats(t.name) }
                line("tensors: ok (names, dtypes and shapes as FORMAT.md, all float values finite and within ±\(SafeTensorsFile.maxMagnitude))")
            } catch {
                line("tensors: FAILED: \(error)")
                problems.append("tensors: \(error)")
            }
        }

        var groups = [String: Int]()
        for t in file.tensors { groups[String(t.name.prefix { $0 != "." }), default: 0] += t.elementCount }
        let total = groups.values.reduce(0, +)
        let breakdown = groups.keys.sorted().map { "\($0) \(Self.millions(groups[$0]!))" }.joined(separator: ", ")
        line("parameters: \(total) (\(breakdown))")

        if !noTensors {
            let nameWidth = min(48, (file.tensors.map(\.name.count).max() ?? 4) + 2)
            line("")
            line("name".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "dtype  " + "shape".padding(toLength: 20, withPad: " ", startingAt: 0) + "parameters")
            for t in file.tensors.sorted(by: { $0.name < $1.name }) {
                let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
                line(t.name.padding(toLength: max(nameWidth, t.name.count + 1), withPad: " ", startingAt: 0)
                      + t.dtype.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
                      + shape.padding(toLength: max(20, shape.count + 1), withPad: " ", startingAt: 0) + "\(t.elementCount)")
            }
        }
        if !problems.isEmpty {
            line("")
            line("\(model): INVALID (\(problems.count) problem\(problems.count == 1 ? "" : "s"))")
            throw ExitCode.failure
        }
    }

    /// One line of the report. Metadata values, class and tensor names come from the file, so each line is
    /// escaped whole: not even a newline of theirs gets through.
    private func line(_ text: String) { say(TerminalText.escaped(text)) }

    static func millions(_ n: Int) -> String {
        n >= 100_000 ? String(format: "%.2f M", Double(n) / 1e6) : "\(n)"
    }
}
