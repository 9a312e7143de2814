import CoreGraphics
import UIKit

/// The model input for `crop` (in pixels) of `image`, the way the exporter's Python code makes
/// it: composited on white, stretched (not letter-boxed) to the manifest size, grey levels
/// mapped onto [pixel_min, pixel_max], NCHW with one channel. Normalisation is in the model.
func modelInput(from image: CGImage, crop: CGRect, spec: ModelSpec) -> [Float]? {
    guard let cropped = image.cropping(to: crop.integral) else { return nil }
    let width = spec.imageWidth
    let height = spec.imageHeight
    var grey = [UInt8](repeating: UInt8.max, count: width * height)
    let drawn = grey.withUnsafeMutableBytes { bytes -> Bool in
        guard let context = CGContext(
            data: bytes.baseAddress, width: width, height: height, bitsPerComponent: 8, bytesPerRow: width,
            space: CGColorSpaceCreateDeviceGray(), bitmapInfo: CGImageAlphaInfo.none.rawValue
        ) else { return false }
        context.interpolationQuality = .high
        // The buffer starts white, so transparent pixels end up on white as in training.
        context.draw(cropped, in: CGRect(x: 0, y: 0, width: width, height: height))
        return true
    }
    guard drawn else { return nil }
    let scale = (spec.pixelMax - spec.pixelMin) / Float(UInt8.max)
    return grey.map { spec.pixelMin + Float($0) * scale }
}

/// The image redrawn upright: camera pictures carry an orientation flag that CGImage ignores.
func upright(_ image: UIImage) -> UIImage {
    guard image.imageOrientation != .up else { return image }
    let format = UIGraphicsImageRendererFormat()
    format.scale = image.scale
    return UIGraphicsImageRenderer(size: image.size, format: format).image { _ in
        image.draw(in: CGRect(origin: .zero, size: image.size))
    }
}
