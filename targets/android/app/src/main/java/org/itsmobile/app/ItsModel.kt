package org.itsmobile.app

/** One image-to-speech model behind whichever runtime this bundle was built for. */
interface ItsModel : AutoCloseable {
    /** Runs the model on NCHW grey levels laid out as the manifest's `input_shape`. */
    fun run(pixels: FloatArray): ItsOutputs
}

/**
 * The model's outputs by manifest name. Integer outputs are widened or narrowed to Int
 * whatever the runtime gave (int32 or int64): they are ids and counts, far below Int.MAX_VALUE.
 */
class ItsOutputs(private val byName: Map<String, Any>) {
    fun floats(name: String): FloatArray =
        byName[name] as? FloatArray ?: error("model output '$name' is missing or not float32")

    fun ints(name: String): IntArray =
        byName[name] as? IntArray ?: error("model output '$name' is missing or not an integer tensor")
}
