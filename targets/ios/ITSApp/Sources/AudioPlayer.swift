import AVFoundation

/// Plays mono float PCM through AVAudioEngine at the manifest's sample rate.
final class AudioPlayer {
    private let engine = AVAudioEngine()
    private let node = AVAudioPlayerNode()
    private let format: AVAudioFormat

    init(sampleRate: Double) throws {
        guard let format = AVAudioFormat(standardFormatWithSampleRate: sampleRate, channels: 1) else {
            throw ModelError.badManifest("sample_rate")
        }
        self.format = format
        try AVAudioSession.sharedInstance().setCategory(.playback, mode: .spokenAudio)
        engine.attach(node)
        // The mixer resamples to the hardware rate, so any manifest rate plays.
        engine.connect(node, to: engine.mainMixerNode, format: format)
    }

    func play(_ samples: [Float]) throws {
        guard !samples.isEmpty,
              let buffer = AVAudioPCMBuffer(pcmFormat: format, frameCapacity: AVAudioFrameCount(samples.count)),
              let channel = buffer.floatChannelData?[0] else { return }
        buffer.frameLength = buffer.frameCapacity
        for (index, sample) in samples.enumerated() { channel[index] = sample }
        try AVAudioSession.sharedInstance().setActive(true)
        if !engine.isRunning { try engine.start() }
        node.stop()
        node.scheduleBuffer(buffer)
        node.play()
    }
}
