package org.itsmobile.app

import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.Rect

/**
 * The model input for `crop` of `source`, the way the exporter's Python code makes it: alpha
 * composited on white, stretched (not letter-boxed) to the manifest size, luma grey levels
 * (ITU-R 601, as PIL's "L") mapped onto [pixel_min, pixel_max], NCHW with one channel.
 * Normalisation happens inside the model.
 */
fun toModelInput(source: Bitmap, crop: Rect, spec: ModelSpec): FloatArray {
    val width = spec.imageWidth
    val height = spec.imageHeight
    val scaled = Bitmap.createBitmap(width, height, Bitmap.Config.ARGB_8888)
    Canvas(scaled).apply {
        drawColor(Color.WHITE)
        drawBitmap(source, crop, Rect(0, 0, width, height), Paint(Paint.FILTER_BITMAP_FLAG))
    }
    val argb = IntArray(width * height)
    scaled.getPixels(argb, 0, width, 0, 0, width, height)
    scaled.recycle()
    val scale = (spec.pixelMax - spec.pixelMin) / 255f
    return FloatArray(argb.size) { i ->
        val c = argb[i]
        val grey = 0.299f * Color.red(c) + 0.587f * Color.green(c) + 0.114f * Color.blue(c)
        spec.pixelMin + grey * scale
    }
}
