import SoundlocFeatures

extension ModelMetadata {
    /// The log-mel front end this model was trained with, from its `audio_features`; every consumer
    /// (pipeline, evaluator, infer, quantize) builds its windows from this one conversion.
    public func logMelConfig() throws -> LogMelConfig {
        var config = LogMelConfig.dsol
        config.sampleRate = audio.sampleRate
        config.fftSize = audio.nFFT
        config.hop = audio.hop
        config.melBands = audio.melBands
        config.maxFrequency = audio.maxFrequency
        config.topDB = Float(audio.topDB)
        config.windowSamples = (audio.frames - 1) * audio.hop
        try config.validate()
        guard config.framesPerWindow == audio.frames else {
            throw LogMelError.badConfiguration("\(audio.frames) frames do not make a centred window of hop \(audio.hop)")
        }
        return config
    }
}
