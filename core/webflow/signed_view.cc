#include "core/webflow/signed_view.h"

#include "core/keys/keystore.h"

namespace wmk::webflow {

Result<reader::MessageView> verify_signed_message(app::App& app, const session::Session& session,
                                                  std::string_view raw) {
  keys::KeyStore store(app, keys::Actor{session.login, session.short_id, session.client_addr});
  return reader::verify_signed(store, raw);
}

}  // namespace wmk::webflow
