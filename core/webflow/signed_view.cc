#include "core/webflow/signed_view.h"

#include "core/bindings/bindings.h"
#include "core/contacts/contacts.h"
#include "core/keys/keystore.h"
#include "core/mail/mime.h"

namespace wmk::webflow {

Result<SignedMessage> verify_signed_message(app::App& app, const session::Session& session,
                                            const mail::Message& message) {
  keys::KeyStore store(app.db, app.config, *app.clock,
                       keys::Actor{session.login, session.short_id, session.client_addr});
  auto view =
      reader::verify_signed(store, message, contacts::standard_bindings(app, session.user_id));
  if (!view)
    return view.error();
  SignedMessage out{std::move(view).value(), std::nullopt};
  if (out.view.signature_state != reader::SignatureState::valid)
    return out;
  const mail::ParsedMessage& envelope = message.parsed();
  if (envelope.from.address.empty())
    return out;
  const std::int64_t when = envelope.date ? *envelope.date : app.clock->now();
  contacts::ContactStore contacts(
      app, store, keys::Actor{session.login, session.short_id, session.client_addr});
  for (const auto& v : out.view.signatures) {
    if (v.status == reader::VerdictStatus::good && v.matches_from) {
      out.previous_signer = contacts.note_signer(session.user_id, envelope.from.address, v.type,
                                                 v.signer_fingerprint, when);
      break;
    }
  }
  return out;
}

}  // namespace wmk::webflow
