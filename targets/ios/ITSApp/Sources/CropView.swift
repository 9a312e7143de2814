import SwiftUI
import UIKit

/// The picture fitted to the space with a crop box over it: drag the box to move it, drag its
/// corner handle to resize it. `box` is in unit coordinates of the image, so the crop does not
/// depend on the screen.
struct CropView: View {
    let image: UIImage
    @Binding var box: CGRect

    @State private var dragStart: CGRect?
    private let handle: CGFloat = 28
    private let smallestSide: CGFloat = 0.02

    var body: some View {
        GeometryReader { geometry in
            let frame = fitted(image.size, in: geometry.size)
            let onScreen = CGRect(
                x: frame.minX + box.minX * frame.width, y: frame.minY + box.minY * frame.height,
                width: box.width * frame.width, height: box.height * frame.height
            )
            ZStack {
                Image(uiImage: image)
                    .resizable()
                    .frame(width: frame.width, height: frame.height)
                    .position(x: frame.midX, y: frame.midY)
                Rectangle()
                    .stroke(.yellow, lineWidth: 2)
                    .contentShape(Rectangle())
                    .frame(width: onScreen.width, height: onScreen.height)
                    .position(x: onScreen.midX, y: onScreen.midY)
                    .gesture(drag(in: frame, resize: false))
                Circle()
                    .fill(.yellow)
                    .frame(width: handle, height: handle)
                    .position(x: onScreen.maxX, y: onScreen.maxY)
                    .gesture(drag(in: frame, resize: true))
            }
        }
    }

    /// Moves the box, or resizes it from its bottom-right corner, keeping it inside the image.
    private func drag(in frame: CGRect, resize: Bool) -> some Gesture {
        DragGesture()
            .onChanged { value in
                let start = dragStart ?? box
                dragStart = start
                let dx = value.translation.width / frame.width
                let dy = value.translation.height / frame.height
                if resize {
                    box.size = CGSize(
                        width: min(max(start.width + dx, smallestSide), 1 - start.minX),
                        height: min(max(start.height + dy, smallestSide), 1 - start.minY)
                    )
                } else {
                    box.origin = CGPoint(
                        x: min(max(start.minX + dx, 0), 1 - start.width),
                        y: min(max(start.minY + dy, 0), 1 - start.height)
                    )
                }
            }
            .onEnded { _ in dragStart = nil }
    }

    private func fitted(_ size: CGSize, in bounds: CGSize) -> CGRect {
        guard size.width > 0, size.height > 0 else { return .zero }
        let scale = min(bounds.width / size.width, bounds.height / size.height)
        let width = size.width * scale
        let height = size.height * scale
        return CGRect(x: (bounds.width - width) / 2, y: (bounds.height - height) / 2, width: width, height: height)
    }
}
