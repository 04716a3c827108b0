// balance-poll: on the payment success page, asks /account/balance.json?payment=… every
// `interval` ms until the payment is credited, then shows the new balance and stops — the
// credit lands when the webhook has been processed, so the page updates without a reload.
// Gives up after `maxPolls` and says to check the account page later.
import { Controller } from "../vendor/stimulus.js";

export default class extends Controller {
  static targets = ["status", "balance"];
  static values = { url: String, interval: { type: Number, default: 1000 }, maxPolls: { type: Number, default: 600 } };

  connect() {
    this.polls = 0;
    this.schedule();
  }

  disconnect() {
    clearTimeout(this.timer);
  }

  schedule() {
    this.timer = setTimeout(() => this.poll(), this.intervalValue);
  }

  async poll() {
    this.polls += 1;
    try {
      const response = await fetch(this.urlValue, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const body = await response.json();
        if (body.available_display) this.balanceTarget.textContent = body.available_display;
        if (body.payment && body.payment.credited) {
          this.statusTarget.textContent = "Credit added.";
          this.element.dataset.credited = "true";
          return;
        }
      }
    } catch (_) {
      // A network blip: try again at the next tick.
    }
    if (this.polls >= this.maxPollsValue) {
      this.statusTarget.textContent = "Still processing. Your balance on the account page shows the credit once it lands.";
      return;
    }
    this.schedule();
  }
}
