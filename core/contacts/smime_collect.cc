// ContactStore::smime_signer_from_message: certificates from validly signed S/MIME
// mail, collected at delivery (cli/deliver.cc is the one caller). Kept apart from
// contacts.cc because it needs the reader's verification.
#include <algorithm>

#include "core/auth/users.h"
#include "core/contacts/contacts.h"
#include "core/mail/mime.h"
#include "core/reader/reader.h"
#include "core/util/ascii.h"

namespace wmk::contacts {

Result<std::optional<ContactKey>> ContactStore::smime_signer_from_message(std::int64_t user_id,
                                                                          std::string_view raw) {
  auto message = mail::Message::parse(raw);
  if (!message)
    return message.error();
  const mail::ParsedMessage* parsed = &message->parsed();
  if (parsed->protection != mail::Protection::smime_signed || parsed->from.address.empty())
    return std::optional<ContactKey>();
  auto user = auth::UserStore(app_.db, *app_.clock).find_by_id(user_id);
  if (!user)
    return make_error(Errc::not_found, "no such user");
  auto view = reader::verify_signed(keys_, *message, standard_bindings(app_, user_id));
  if (!view)
    return std::optional<ContactKey>();  // nothing that can be checked: nothing to collect
  const std::string from = util::ascii_lower(parsed->from.address);
  for (const auto& v : view->signatures) {
    // good for S/MIME means the signature is valid and the chain ends at a trusted
    // root; names_from: the certificate itself carries the From address. A binding
    // that exists already (any source) is left as it is.
    if (v.type != keys::KeyType::smime || v.status != reader::VerdictStatus::good || !v.trusted ||
        !v.names_from || v.matches_from || v.certificate.empty())
      continue;
    // Read again on its own: the stored certificate must chain by itself too.
    auto cert = read(v.certificate);
    if (!cert || !cert->chain_trusted ||
        std::find(cert->emails.begin(), cert->emails.end(), from) == cert->emails.end())
      continue;
    const std::int64_t now = app_.clock->now();
    const std::int64_t when = parsed->date ? std::min(*parsed->date, now) : now;
    ImportRequest request;
    request.emails = {from};
    request.source = BindingSource::ca;
    auto imported = import_for(user_id, user->login, v.certificate, request, when);
    audit(user->login, "contact.import", imported ? Status{} : Status{imported.error()},
          imported ? imported->fingerprint : v.signer_fingerprint,
          "collected from a signed message, bound with source ca");
    if (!imported)
      return imported.error();
    return std::optional<ContactKey>(std::move(imported).value());
  }
  return std::optional<ContactKey>();
}

}  // namespace wmk::contacts
