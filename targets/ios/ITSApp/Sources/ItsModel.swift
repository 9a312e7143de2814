import CoreML
import Foundation

/// The model's outputs by manifest name. Core ML gives integers as int32 (it has no int64
/// arrays) and NSNumber reads either, so both float and integer outputs go through it.
struct ItsOutputs: @unchecked Sendable {
    let byName: [String: MLMultiArray]

    func floats(_ name: String) throws -> [Float] {
        guard let array = byName[name] else { throw ModelError.missingOutput(name) }
        return (0..<array.count).map { array[$0].floatValue }
    }

    func ints(_ name: String) throws -> [Int] {
        guard let array = byName[name] else { throw ModelError.missingOutput(name) }
        return (0..<array.count).map { array[$0].intValue }
    }
}

/// The .mlpackage, compiled on the device at start and run through Core ML's class-free API
/// (no generated model class), with the input and outputs named by the manifest.
final class ItsModel: @unchecked Sendable {
    private let model: MLModel
    private let spec: ModelSpec

    init(spec: ModelSpec, bundle: Bundle = .main) async throws {
        let compiled: URL
        // Xcode may already have compiled the package into <name>.mlmodelc; else compile it here.
        let name = (spec.modelFile as NSString).deletingPathExtension
        if let url = bundle.url(forResource: name, withExtension: "mlmodelc") {
            compiled = url
        } else if let url = bundle.url(forResource: spec.modelFile, withExtension: nil) {
            compiled = try await MLModel.compileModel(at: url)
        } else {
            throw ModelError.missingResource(spec.modelFile)
        }
        model = try MLModel(contentsOf: compiled, configuration: MLModelConfiguration())
        self.spec = spec
    }

    /// Runs the model on NCHW grey levels laid out as the manifest's `input_shape`.
    func run(pixels: [Float]) throws -> ItsOutputs {
        let input = try MLMultiArray(shape: spec.inputShape.map { NSNumber(value: $0) }, dataType: .float32)
        guard input.count == pixels.count else { throw ModelError.badManifest("input_shape") }
        input.withUnsafeMutableBufferPointer(ofType: Float.self) { destination, _ in
            for (index, value) in pixels.enumerated() { destination[index] = value }
        }
        let features = try MLDictionaryFeatureProvider(dictionary: [spec.inputName: MLFeatureValue(multiArray: input)])
        let result = try model.prediction(from: features)
        var byName: [String: MLMultiArray] = [:]
        for name in spec.outputNames {
            guard let array = result.featureValue(for: name)?.multiArrayValue else { throw ModelError.missingOutput(name) }
            byName[name] = array
        }
        return ItsOutputs(byName: byName)
    }
}
