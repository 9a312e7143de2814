import Foundation

/// The manifest resource bundled next to the model; its name is fixed when the bundle is built.
let manifestResource = "{{manifest_file}}"

enum ModelError: LocalizedError {
    case missingResource(String)
    case badManifest(String)
    case missingOutput(String)

    var errorDescription: String? {
        switch self {
        case .missingResource(let name): "\(name) is not in the app bundle"
        case .badManifest(let field): "the manifest has no usable \(field)"
        case .missingOutput(let name): "the model has no usable output \(name)"
        }
    }
}

/// The model manifest. Every model number the app uses (sizes, rates, ids, names) is read from
/// here, so a re-exported model with other shapes needs no code change.
struct ModelSpec: Sendable {
    let modelFile: String
    let inputName: String
    let inputShape: [Int]
    let imageHeight: Int
    let imageWidth: Int
    let pixelMin: Float
    let pixelMax: Float
    let sampleRate: Double
    let eosId: Int
    let padId: Int
    let phonemes: [String]
    let outputNames: [String]

    init(bundle: Bundle = .main) throws {
        guard let url = bundle.url(forResource: manifestResource, withExtension: nil) else {
            throw ModelError.missingResource(manifestResource)
        }
        guard let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] else {
            throw ModelError.badManifest("top-level object")
        }
        modelFile = try field(manifest["model_file"], "model_file")
        inputName = try field(manifest["input_name"], "input_name")
        inputShape = try field(manifest["input_shape"], "input_shape")
        imageHeight = try field(manifest["image_height"], "image_height")
        imageWidth = try field(manifest["image_width"], "image_width")
        pixelMin = try Float(field(manifest["pixel_min"], "pixel_min") as Double)
        pixelMax = try Float(field(manifest["pixel_max"], "pixel_max") as Double)
        sampleRate = try field(manifest["sample_rate"], "sample_rate")
        eosId = try field(manifest["eos_id"], "eos_id")
        padId = try field(manifest["pad_id"], "pad_id")
        phonemes = try field(manifest["phonemes"], "phonemes")
        outputNames = try field(manifest["output_names"], "output_names")
    }

    /// Phoneme strings of the first `count` ids, stopping at the end marker and skipping padding.
    func decode(_ ids: [Int], count: Int) -> [String] {
        ids.prefix(max(0, min(count, ids.count)))
            .prefix { $0 != eosId }
            .filter { $0 != padId && phonemes.indices.contains($0) }
            .map { phonemes[$0] }
    }
}

/// A manifest value as `T`; JSON numbers arrive as NSNumber, which bridges to Int, Double and Float.
private func field<T>(_ value: Any?, _ name: String) throws -> T {
    guard let typed = value as? T else { throw ModelError.badManifest(name) }
    return typed
}
