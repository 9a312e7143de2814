// Plugin versions are set once, here; the model runtime's version is in gradle/libs.versions.toml.
plugins {
    id("com.android.application") version "{{agp_version}}" apply false
    id("org.jetbrains.kotlin.android") version "{{kotlin_version}}" apply false
}
