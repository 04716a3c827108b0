// flash: a dismiss button on a flash message. Removes the message from the page; the
// message's role="status" region stays, so screen readers are not disturbed.
import { Controller } from "../vendor/stimulus.js";

export default class extends Controller {
  static targets = ["message"];

  dismiss(event) {
    const message = event.target.closest("[data-flash-target='message']");
    if (message) message.remove();
  }
}
