package org.itsmobile.app

import android.media.AudioAttributes
import android.media.AudioFormat
import android.media.AudioTrack

/** Plays mono float PCM once at `sampleRate`; the caller releases the returned track. */
fun playPcm(samples: FloatArray, sampleRate: Int): AudioTrack {
    val track = AudioTrack.Builder()
        .setAudioAttributes(
            AudioAttributes.Builder()
                .setUsage(AudioAttributes.USAGE_MEDIA)
                .setContentType(AudioAttributes.CONTENT_TYPE_SPEECH)
                .build(),
        )
        .setAudioFormat(
            AudioFormat.Builder()
                .setEncoding(AudioFormat.ENCODING_PCM_FLOAT)
                .setSampleRate(sampleRate)
                .setChannelMask(AudioFormat.CHANNEL_OUT_MONO)
                .build(),
        )
        // Static mode: the whole word is known up front, so one write and play.
        .setTransferMode(AudioTrack.MODE_STATIC)
        .setBufferSizeInBytes(samples.size * Float.SIZE_BYTES)
        .build()
    track.write(samples, 0, samples.size, AudioTrack.WRITE_BLOCKING)
    track.play()
    return track
}
