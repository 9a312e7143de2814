package org.itsmobile.app

import android.content.Context
import org.json.JSONObject

/** The manifest asset bundled next to the model; its name is fixed when the bundle is built. */
const val MANIFEST_ASSET = "{{manifest_file}}"

/**
 * The model manifest. Every model number the app uses (sizes, rates, ids, names) is read from
 * here, so a re-exported model with other shapes needs no code change.
 */
class ModelSpec(manifest: JSONObject) {
    val modelFile: String = manifest.getString("model_file")
    val initMethod: String? = if (manifest.isNull("init_method")) null else manifest.getString("init_method")
    val inputName: String = manifest.getString("input_name")
    val inputShape: LongArray = manifest.getJSONArray("input_shape").let { a -> LongArray(a.length()) { a.getLong(it) } }
    val imageHeight: Int = manifest.getInt("image_height")
    val imageWidth: Int = manifest.getInt("image_width")
    val pixelMin: Float = manifest.getDouble("pixel_min").toFloat()
    val pixelMax: Float = manifest.getDouble("pixel_max").toFloat()
    val sampleRate: Int = manifest.getInt("sample_rate")
    val eosId: Int = manifest.getInt("eos_id")
    val padId: Int = manifest.getInt("pad_id")
    val phonemes: List<String> = manifest.getJSONArray("phonemes").let { a -> List(a.length()) { a.getString(it) } }
    val outputNames: List<String> = manifest.getJSONArray("output_names").let { a -> List(a.length()) { a.getString(it) } }

    /** Output name -> dtype ("float32", "int32", "int64"), as the exporter wrote them. */
    val outputDtypes: Map<String, String> = manifest.getJSONArray("outputs").let { a ->
        (0 until a.length()).associate { i ->
            val output = a.getJSONObject(i)
            output.getString("name") to output.getString("dtype")
        }
    }

    /** Phoneme strings of the first `count` ids, stopping at the end marker and skipping padding. */
    fun decode(ids: IntArray, count: Int): List<String> =
        ids.take(count.coerceIn(0, ids.size))
            .takeWhile { it != eosId }
            .filter { it != padId && it in phonemes.indices }
            .map { phonemes[it] }

    companion object {
        fun fromAssets(context: Context): ModelSpec =
            ModelSpec(JSONObject(context.assets.open(MANIFEST_ASSET).bufferedReader().use { it.readText() }))
    }
}
