package org.itsmobile.app

import android.content.Context
import java.io.File
import org.pytorch.executorch.DType
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

/** This bundle's runtime: ExecuTorch. */
fun openModel(context: Context, spec: ModelSpec): ItsModel = ExecutorchModel(context, spec)

/**
 * The .pte through ExecuTorch's Java Module. The packed program has two methods: `init`
 * (its name is the manifest's `init_method`), run once after loading, then `forward`.
 *
 * Shared memory arenas: ExecuTorch's C++ Module takes `share_memory_arenas = true` so that
 * methods see one planned arena, but the Java API (Module.load(path, loadMode, numThreads))
 * has no such option, so each method here gets its own arenas. If `init` fills mutable buffers
 * that `forward` reads, the export must not rely on that sharing for this app to be correct.
 */
class ExecutorchModel(context: Context, private val spec: ModelSpec) : ItsModel {
    private val module: Module = Module.load(copyToFiles(context, spec.modelFile).absolutePath, Module.LOAD_MODE_MMAP)

    init {
        spec.initMethod?.let { module.execute(it) }
        // Load `forward` now so the first recognition is not charged with it.
        module.loadMethod("forward")
    }

    override fun run(pixels: FloatArray): ItsOutputs {
        val values = module.forward(EValue.from(Tensor.fromBlob(pixels, spec.inputShape)))
        // ExecuTorch returns outputs by position, in the order the manifest lists them.
        check(values.size == spec.outputNames.size) {
            "the model returned ${values.size} outputs, the manifest names ${spec.outputNames.size}"
        }
        return ItsOutputs(spec.outputNames.zip(values).associate { (name, value) -> name to toArray(value.toTensor()) })
    }

    private fun toArray(tensor: Tensor): Any = when (tensor.dtype()) {
        DType.FLOAT -> tensor.dataAsFloatArray
        DType.INT32 -> tensor.dataAsIntArray
        DType.INT64 -> tensor.dataAsLongArray.let { longs -> IntArray(longs.size) { longs[it].toInt() } }
        else -> error("unsupported output dtype ${tensor.dtype()}")
    }

    override fun close() = module.destroy()
}

/** Module.load needs a file path and assets live inside the APK, so copy the model out first. */
private fun copyToFiles(context: Context, asset: String): File {
    val target = File(context.filesDir, asset)
    // Always refresh: an app update may ship a different model under the same name.
    val partial = File(context.filesDir, "$asset.partial")
    context.assets.open(asset).use { input -> partial.outputStream().use { input.copyTo(it) } }
    check(partial.renameTo(target)) { "cannot move $partial to $target" }
    return target
}
