package org.itsmobile.app

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.media.AudioTrack
import android.net.Uri
import android.os.Bundle
import android.os.SystemClock
import android.widget.Button
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.result.contract.ActivityResultContracts
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Pick or shoot a picture, box one word, read it aloud, show phonemes and latency. */
class MainActivity : ComponentActivity() {
    private lateinit var spec: ModelSpec
    private var model: ItsModel? = null
    // One worker thread: model loading and inference never block the UI and never overlap.
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var track: AudioTrack? = null
    private var lastWaveform: FloatArray? = null

    private lateinit var cropView: CropView
    private lateinit var runButton: Button
    private lateinit var playButton: Button
    private lateinit var phonemesText: TextView
    private lateinit var statusText: TextView

    private val pickImage = registerForActivityResult(ActivityResultContracts.GetContent()) { uri: Uri? ->
        uri?.let(::decodeBitmap)?.let(cropView::setBitmap)
    }
    private val takePicture = registerForActivityResult(ActivityResultContracts.TakePicturePreview()) { bitmap: Bitmap? ->
        bitmap?.let(cropView::setBitmap)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        cropView = findViewById(R.id.crop_view)
        runButton = findViewById(R.id.run_button)
        playButton = findViewById(R.id.play_button)
        phonemesText = findViewById(R.id.phonemes_text)
        statusText = findViewById(R.id.status_text)

        findViewById<Button>(R.id.pick_button).setOnClickListener { pickImage.launch("image/*") }
        findViewById<Button>(R.id.camera_button).setOnClickListener { takePicture.launch(null) }
        runButton.setOnClickListener { recognise() }
        playButton.setOnClickListener { lastWaveform?.let(::play) }

        spec = ModelSpec.fromAssets(this)
        worker.execute {
            val loaded = runCatching { openModel(this, spec) }
            runOnUiThread {
                loaded.onSuccess {
                    model = it
                    runButton.isEnabled = true
                    statusText.text = getString(R.string.ready, spec.modelFile)
                }.onFailure { statusText.text = getString(R.string.load_failed, it.message) }
            }
        }
    }

    private fun recognise() {
        val current = model ?: return
        val bitmap = cropView.bitmap()
        val crop = cropView.cropRect()
        if (bitmap == null || crop == null) {
            statusText.text = getString(R.string.no_image)
            return
        }
        runButton.isEnabled = false
        worker.execute {
            val result = runCatching {
                val start = SystemClock.elapsedRealtimeNanos()
                val pixels = toModelInput(bitmap, crop, spec)
                val prepared = SystemClock.elapsedRealtimeNanos()
                val outputs = current.run(pixels)
                val done = SystemClock.elapsedRealtimeNanos()
                Recognition(outputs, (done - prepared) / 1e6, (prepared - start) / 1e6)
            }
            runOnUiThread {
                runButton.isEnabled = true
                result.onSuccess(::show).onFailure { statusText.text = getString(R.string.run_failed, it.message) }
            }
        }
    }

    private class Recognition(val outputs: ItsOutputs, val modelMs: Double, val prepareMs: Double)

    private fun show(recognition: Recognition) {
        val outputs = recognition.outputs
        val ids = outputs.ints("phonemes")
        val phonemes = spec.decode(ids, outputs.ints("n_phonemes").first())
        phonemesText.text = getString(R.string.phonemes, phonemes.joinToString(""))
        statusText.text = getString(R.string.latency, recognition.modelMs, recognition.prepareMs)
        val waveform = outputs.floats("waveform")
        val nSamples = outputs.ints("n_samples").first().coerceIn(0, waveform.size)
        lastWaveform = waveform.copyOf(nSamples)
        playButton.isEnabled = nSamples > 0
        lastWaveform?.let(::play)
    }

    private fun play(samples: FloatArray) {
        if (samples.isEmpty()) return
        track?.release()
        track = playPcm(samples, spec.sampleRate)
    }

    /** Decodes a picked image, subsampled so its longer side stays near the screen's. */
    private fun decodeBitmap(uri: Uri): Bitmap? {
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        contentResolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, bounds) }
        val screen = maxOf(resources.displayMetrics.widthPixels, resources.displayMetrics.heightPixels)
        var sample = 1
        while (maxOf(bounds.outWidth, bounds.outHeight) / (sample * 2) >= screen) sample *= 2
        val options = BitmapFactory.Options().apply { inSampleSize = sample }
        return contentResolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, options) }
    }

    override fun onDestroy() {
        track?.release()
        worker.execute { model?.close() }
        worker.shutdown()
        super.onDestroy()
    }
}
