// password-visibility: a "Show"/"Hide" button beside a password input. The button is hidden
// until this controller connects, so without JavaScript nothing is shown that does not work.
import { Controller } from "../vendor/stimulus.js";

export default class extends Controller {
  static targets = ["input", "toggle"];

  connect() {
    if (this.hasToggleTarget) this.toggleTarget.hidden = false;
  }

  toggle() {
    const shown = this.inputTarget.type === "text";
    this.inputTarget.type = shown ? "password" : "text";
    this.toggleTarget.textContent = shown ? "Show" : "Hide";
    this.toggleTarget.setAttribute("aria-pressed", shown ? "false" : "true");
  }
}
