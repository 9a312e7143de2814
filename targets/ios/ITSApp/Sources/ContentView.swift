import Observation
import PhotosUI
import SwiftUI
import UIKit

/// Loads the model, reads the boxed word and keeps what the screen shows.
@MainActor
@Observable
final class Reader {
    var status = "Loading the model…"
    var phonemes = ""
    var latency = ""
    var isReady = false
    var isRunning = false
    var canReplay: Bool { !lastWaveform.isEmpty }

    private var spec: ModelSpec?
    private var model: ItsModel?
    private var player: AudioPlayer?
    private var lastWaveform: [Float] = []

    func load() async {
        do {
            let spec = try ModelSpec()
            model = try await ItsModel(spec: spec)
            player = try AudioPlayer(sampleRate: spec.sampleRate)
            self.spec = spec
            isReady = true
            status = "Model ready (\(spec.modelFile))."
        } catch {
            status = "Could not load the model: \(error.localizedDescription)"
        }
    }

    /// Runs the model on `box` (unit coordinates) of `image`, then shows and plays the result.
    func read(_ image: UIImage, box: CGRect) async {
        guard let model, let spec, let cgImage = image.cgImage else { return }
        let crop = CGRect(
            x: box.minX * CGFloat(cgImage.width), y: box.minY * CGFloat(cgImage.height),
            width: box.width * CGFloat(cgImage.width), height: box.height * CGFloat(cgImage.height)
        )
        isRunning = true
        defer { isRunning = false }
        do {
            let clock = ContinuousClock()
            let start = clock.now
            guard let pixels = modelInput(from: cgImage, crop: crop, spec: spec) else {
                status = "Could not read the boxed part of the picture."
                return
            }
            let prepared = clock.now
            // Off the main actor: the UI stays responsive while the model runs.
            let outputs = try await Task.detached { try model.run(pixels: pixels) }.value
            let done = clock.now

            let ids = try outputs.ints("phonemes")
            let count = try outputs.ints("n_phonemes").first ?? 0
            phonemes = "/" + spec.decode(ids, count: count).joined() + "/"
            let waveform = try outputs.floats("waveform")
            let nSamples = try min(max(outputs.ints("n_samples").first ?? 0, 0), waveform.count)
            lastWaveform = Array(waveform.prefix(nSamples))
            latency = String(
                format: "Model %.1f ms · preprocessing %.1f ms",
                milliseconds(prepared.duration(to: done)), milliseconds(start.duration(to: prepared))
            )
            status = ""
            replay()
        } catch {
            status = "The model failed: \(error.localizedDescription)"
        }
    }

    func replay() {
        do {
            try player?.play(lastWaveform)
        } catch {
            status = "Could not play the audio: \(error.localizedDescription)"
        }
    }

    private func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e3 + Double(attoseconds) / 1e15
    }
}

struct ContentView: View {
    @State private var reader = Reader()
    @State private var pickerItem: PhotosPickerItem?
    @State private var image: UIImage?
    @State private var box = CGRect(x: 0, y: 0, width: 1, height: 1)
    @State private var showCamera = false

    var body: some View {
        VStack(spacing: 12) {
            HStack {
                PhotosPicker(selection: $pickerItem, matching: .images) {
                    Label("Photos", systemImage: "photo")
                }
                Button {
                    showCamera = true
                } label: {
                    Label("Camera", systemImage: "camera")
                }
                .disabled(!CameraPicker.isAvailable)
            }
            .buttonStyle(.bordered)

            Text("Drag the box around one printed word; drag its corner to resize it.")
                .font(.footnote)

            Group {
                if let image {
                    CropView(image: image, box: $box)
                } else {
                    ContentUnavailableView("No picture yet", systemImage: "text.viewfinder")
                }
            }
            .frame(maxHeight: .infinity)

            HStack {
                Button("Read aloud") {
                    guard let image else { return }
                    Task { await reader.read(image, box: box) }
                }
                .buttonStyle(.borderedProminent)
                .disabled(!reader.isReady || image == nil || reader.isRunning)

                Button("Play again") { reader.replay() }
                    .buttonStyle(.bordered)
                    .disabled(!reader.canReplay)
            }

            Text(reader.phonemes).font(.title)
            Text(reader.latency).font(.footnote).monospacedDigit()
            Text(reader.status).font(.footnote).foregroundStyle(.secondary)
        }
        .padding()
        .task { await reader.load() }
        .onChange(of: pickerItem) { _, item in
            Task {
                if let data = try? await item?.loadTransferable(type: Data.self), let picked = UIImage(data: data) {
                    show(picked)
                }
            }
        }
        .fullScreenCover(isPresented: $showCamera) {
            CameraPicker { picture in
                showCamera = false
                if let picture { show(picture) }
            }
            .ignoresSafeArea()
        }
    }

    private func show(_ picture: UIImage) {
        image = upright(picture)
        box = CGRect(x: 0, y: 0, width: 1, height: 1)
    }
}
