import PagiCore

/// The handlers of this module, by the name a route uses, for `Builtins` to register.
public enum RespondHandlers {
    public static var makers: [String: HandlerFactory.Maker] {
        [
            "respond": { options, _, location in try RespondHandler(options: options, location: location) },
            "redirect": { options, _, location in try RedirectHandler(options: options, location: location) },
            "health": { _, _, _ in HealthHandler() },
        ]
    }
}
