// RingLedger's one script, an ES module loaded by api/templates/layout.html: Turbo Drive for
// navigation, Stimulus for the small behaviours in ./controllers/. Vendored copies only (no
// CDN); scripts/build-assets refreshes them. No inline scripts anywhere: the CSP forbids them.
import * as Turbo from "./vendor/turbo.js";
import { Application } from "./vendor/stimulus.js";
import { controllers } from "./controllers/index.js";

// Forms submit the ordinary way unless they opt in with data-turbo="true": the server answers
// a failed form with the page re-rendered (200 or 4xx), which Turbo would not show.
Turbo.config.forms.mode = "optin";

const application = Application.start();
for (const [name, controller] of controllers) {
  application.register(name, controller);
}
