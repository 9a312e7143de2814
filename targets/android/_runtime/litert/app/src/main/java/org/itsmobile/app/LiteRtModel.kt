package org.itsmobile.app

import android.content.Context
import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.CompiledModel
import com.google.ai.edge.litert.TensorBuffer

/** This bundle's runtime: LiteRT. */
fun openModel(context: Context, spec: ModelSpec): ItsModel = LiteRtModel(context, spec)

/**
 * The .tflite through LiteRT's CompiledModel, on the CPU. The file is stored uncompressed in
 * the APK (noCompress in app/build.gradle.kts) so LiteRT reads it straight from assets.
 * Inputs and outputs are bound by signature name, because output order is not guaranteed.
 */
class LiteRtModel(context: Context, private val spec: ModelSpec) : ItsModel {
    private val model = CompiledModel.create(context.assets, spec.modelFile, CompiledModel.Options(Accelerator.CPU))
    private val input: TensorBuffer = model.createInputBuffer(spec.inputName)
    private val outputs: Map<String, TensorBuffer> = spec.outputNames.associateWith { model.createOutputBuffer(it) }

    override fun run(pixels: FloatArray): ItsOutputs {
        input.writeFloat(pixels)
        model.run(mapOf(spec.inputName to input), outputs)
        return ItsOutputs(outputs.mapValues { (name, buffer) -> read(name, buffer) })
    }

    private fun read(name: String, buffer: TensorBuffer): Any = when (val dtype = spec.outputDtypes[name]) {
        "float32" -> buffer.readFloat()
        "int32" -> buffer.readInt()
        // LiteRT's Kotlin TensorBuffer reads float32 and int32 only, so the exporter must give
        // int32 integer outputs for this runtime.
        else -> error("LiteRT cannot read output '$name' of dtype $dtype; export it as int32")
    }

    override fun close() {
        outputs.values.forEach { it.close() }
        input.close()
        model.close()
    }
}
