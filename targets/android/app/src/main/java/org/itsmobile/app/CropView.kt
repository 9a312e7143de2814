package org.itsmobile.app

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Matrix
import android.graphics.Paint
import android.graphics.PointF
import android.graphics.Rect
import android.graphics.RectF
import android.util.AttributeSet
import android.view.MotionEvent
import android.view.View
import kotlin.math.hypot
import kotlin.math.roundToInt

/**
 * Shows a bitmap fitted to the view with a crop box over it. Dragging inside the box moves it,
 * dragging near a corner resizes it, dragging elsewhere draws a new box. The box is kept in
 * bitmap pixels so the crop does not depend on the screen.
 */
class CropView(context: Context, attrs: AttributeSet?) : View(context, attrs) {
    private var bitmap: Bitmap? = null
    private val box = RectF()
    private val toView = Matrix()
    private val toBitmap = Matrix()
    private val handleRadius = resources.getDimension(R.dimen.crop_handle)
    private val framePaint = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        style = Paint.Style.STROKE
        strokeWidth = resources.getDimension(R.dimen.crop_stroke)
        color = Color.YELLOW
    }

    private enum class Drag { NONE, MOVE, RESIZE }

    private var drag = Drag.NONE
    private val anchor = PointF() // fixed corner while resizing
    private val last = PointF() // previous touch while moving

    fun setBitmap(value: Bitmap) {
        bitmap = value
        box.set(0f, 0f, value.width.toFloat(), value.height.toFloat())
        updateMatrices()
        invalidate()
    }

    /** The crop in bitmap pixels, at least one pixel each way; null before a bitmap is set. */
    fun cropRect(): Rect? {
        val bmp = bitmap ?: return null
        val left = box.left.roundToInt().coerceIn(0, bmp.width - 1)
        val top = box.top.roundToInt().coerceIn(0, bmp.height - 1)
        val right = box.right.roundToInt().coerceIn(left + 1, bmp.width)
        val bottom = box.bottom.roundToInt().coerceIn(top + 1, bmp.height)
        return Rect(left, top, right, bottom)
    }

    fun bitmap(): Bitmap? = bitmap

    override fun onSizeChanged(w: Int, h: Int, oldw: Int, oldh: Int) {
        updateMatrices()
    }

    private fun updateMatrices() {
        val bmp = bitmap ?: return
        toView.setRectToRect(
            RectF(0f, 0f, bmp.width.toFloat(), bmp.height.toFloat()),
            RectF(0f, 0f, width.toFloat(), height.toFloat()),
            Matrix.ScaleToFit.CENTER,
        )
        toView.invert(toBitmap)
    }

    override fun onDraw(canvas: Canvas) {
        val bmp = bitmap ?: return
        canvas.drawBitmap(bmp, toView, null)
        val onScreen = RectF(box).also { toView.mapRect(it) }
        canvas.drawRect(onScreen, framePaint)
        for (corner in corners(onScreen)) canvas.drawCircle(corner.x, corner.y, handleRadius / 2, framePaint)
    }

    override fun onTouchEvent(event: MotionEvent): Boolean {
        val bmp = bitmap ?: return false
        val point = floatArrayOf(event.x, event.y).also { toBitmap.mapPoints(it) }
        val x = point[0].coerceIn(0f, bmp.width.toFloat())
        val y = point[1].coerceIn(0f, bmp.height.toFloat())
        when (event.actionMasked) {
            MotionEvent.ACTION_DOWN -> startDrag(event.x, event.y, x, y)
            MotionEvent.ACTION_MOVE -> dragTo(x, y, bmp)
            MotionEvent.ACTION_UP -> {
                drag = Drag.NONE
                performClick()
            }
            MotionEvent.ACTION_CANCEL -> drag = Drag.NONE
        }
        invalidate()
        return true
    }

    override fun performClick(): Boolean = super.performClick()

    /** Picks the gesture from where the finger lands, comparing corners in screen pixels. */
    private fun startDrag(viewX: Float, viewY: Float, x: Float, y: Float) {
        val onScreen = RectF(box).also { toView.mapRect(it) }
        val screenCorners = corners(onScreen)
        val nearest = screenCorners.indices.minBy { hypot(screenCorners[it].x - viewX, screenCorners[it].y - viewY) }
        val bitmapCorners = corners(box)
        when {
            hypot(screenCorners[nearest].x - viewX, screenCorners[nearest].y - viewY) <= handleRadius -> {
                drag = Drag.RESIZE
                anchor.set(bitmapCorners[(nearest + 2) % bitmapCorners.size]) // the opposite corner
            }
            box.contains(x, y) -> {
                drag = Drag.MOVE
                last.set(x, y)
            }
            else -> {
                drag = Drag.RESIZE
                anchor.set(x, y)
                box.set(x, y, x, y)
            }
        }
    }

    private fun dragTo(x: Float, y: Float, bmp: Bitmap) {
        when (drag) {
            Drag.MOVE -> {
                val dx = (x - last.x).coerceIn(-box.left, bmp.width - box.right)
                val dy = (y - last.y).coerceIn(-box.top, bmp.height - box.bottom)
                box.offset(dx, dy)
                last.set(x, y)
            }
            Drag.RESIZE -> {
                box.set(anchor.x, anchor.y, x, y)
                box.sort()
            }
            Drag.NONE -> Unit
        }
    }

    /** Corners clockwise from top-left, so corner i + 2 is opposite corner i. */
    private fun corners(r: RectF) = listOf(
        PointF(r.left, r.top),
        PointF(r.right, r.top),
        PointF(r.right, r.bottom),
        PointF(r.left, r.bottom),
    )
}
