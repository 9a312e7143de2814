import SwiftUI

@main
struct ITSApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
