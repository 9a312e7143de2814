import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    // The Kotlin package is fixed; the installed application id comes from the bundle.
    namespace = "org.itsmobile.app"
    compileSdk = {{android_api_level}}

    defaultConfig {
        applicationId = "{{application_id}}"
        minSdk = 24
        targetSdk = {{android_api_level}}
        versionCode = 1
        versionName = "{{its_mobile_version}}"
        ndk {
            abiFilters += listOf("arm64-v8a", "x86_64")
        }
    }

    // Models stay uncompressed in the APK: LiteRT maps a .tflite straight from it, and
    // copying a .pte out of assets is faster when it is stored as is.
    androidResources {
        noCompress += listOf("tflite", "pte")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    implementation("androidx.activity:activity-ktx:{{activity_version}}")
    // ExecuTorch or LiteRT, whichever this bundle was built for (gradle/libs.versions.toml).
    implementation(libs.model.runtime)
}
