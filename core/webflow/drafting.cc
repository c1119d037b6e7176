#include "core/webflow/drafting.h"

#include <algorithm>

#include "core/mail/outgoing.h"
#include "core/util/ascii.h"
#include "core/util/timefmt.h"

namespace wmk::webflow {

namespace {

std::string when_text(const std::optional<std::int64_t>& date) {
  if (!date)
    return "an unknown date";
  std::string iso = util::format_utc(*date);  // 2024-05-01T12:00:00Z
  if (iso.size() < 16)
    return iso;
  return iso.substr(0, 10) + " " + iso.substr(11, 5) + " UTC";
}

std::string address_list_text(const std::vector<mail::Address>& list) {
  std::string out;
  for (const auto& a : list)
    out += (out.empty() ? "" : ", ") + a.display();
  return out;
}

bool is_own(const auth::User& user, std::string_view address) {
  const std::string a = util::ascii_lower(address);
  return std::any_of(user.emails.begin(), user.emails.end(),
                     [&](const std::string& e) { return util::ascii_lower(e) == a; });
}

bool has_key(keys::KeyStore& keys, const std::string& address, mail::Technology t) {
  return keys.find_default(address, mail::key_type_of(t)).ok();
}

// The user's keys decide the technology of a draft that answers a clear message.
mail::Technology technology_for(keys::KeyStore& keys, const std::string& from) {
  if (!has_key(keys, from, mail::Technology::openpgp) &&
      has_key(keys, from, mail::Technology::smime))
    return mail::Technology::smime;
  return mail::Technology::openpgp;
}

// The original's text into the draft body, as a reply quote or a forward block.
void put_text(mail::Draft& d, const mail::ParsedMessage& m, Derive how, const std::string& text) {
  const std::string when = when_text(m.date);
  if (how == Derive::reply) {
    if (!text.empty())
      d.body = "\n\nOn " + when + ", " + m.from.display() + " wrote:\n" + quote_lines(text);
    return;
  }
  d.body = "\n\n---------- Forwarded message ----------\nFrom: " + m.from.display() +
           "\nDate: " + when + "\nSubject: " + m.subject + "\nTo: " + address_list_text(m.to) +
           "\n\n" + text;
}

}  // namespace

std::string with_prefix(std::string_view prefix, const std::string& subject) {
  if (util::ascii_lower(subject).rfind(util::ascii_lower(prefix), 0) == 0)
    return subject;
  return std::string(prefix) + " " + subject;
}

std::string quote_lines(const std::string& text) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    std::size_t end = nl == std::string::npos ? text.size() : nl;
    std::string_view line(text.data() + start, end - start);
    out += line.empty() || line.front() == '>' ? ">" : "> ";
    out += line;
    out += '\n';
    start = end + 1;
  }
  return out;
}

std::vector<mail::Address> answer_recipients(const mail::ParsedMessage& m, Derive how) {
  std::vector<mail::Address> out;
  if (how == Derive::reply && mail::validate_address(m.from.address).ok())
    out.push_back(m.from);
  return out;
}

QuoteCheck check_quote(const Decrypted& d, const std::vector<mail::Address>& recipients,
                       const auth::User& user, Derive how) {
  const auto& v = d.view;
  QuoteCheck c;
  if (how == Derive::forward)
    c.reasons.push_back(
        "A forward goes to people who did not write the message: its decrypted text is "
        "quoted only if you say so.");
  const bool single =
      v.segments.size() == 1 && v.segments.front().kind == reader::Segment::Kind::decrypted;
  if (!single)
    c.reasons.push_back(
        "Only part of this message is encrypted: text that came in the clear, which anyone "
        "could have written, sits beside the encrypted part. The encrypted part may be "
        "someone else's message wrapped in a mail of the sender's.");
  if (!v.integrity_protected)
    c.reasons.push_back(
        "An encrypted part has no integrity protection, so it may have been altered; it is "
        "never quoted.");
  const bool signed_by_from = v.signature_state == reader::SignatureState::valid;
  if (!signed_by_from)
    c.reasons.push_back(
        "The message has no valid signature by its sender (" + d.envelope.from.address +
        ") covering all of it, so nothing shows that the sender wrote the encrypted text.");
  const std::string signer = util::ascii_lower(d.envelope.from.address);
  std::vector<std::string> outside;
  for (const auto& r : recipients) {
    if ((signed_by_from && util::ascii_lower(r.address) == signer) || is_own(user, r.address))
      continue;
    outside.push_back(r.address);
  }
  if (!outside.empty()) {
    std::string list;
    for (const auto& a : outside)
      list += (list.empty() ? "" : ", ") + a;
    c.reasons.push_back("The draft would go to " + list +
                        ", who did not sign the message and is not you.");
  }
  c.without_asking =
      how == Derive::reply && single && v.integrity_protected && signed_by_from && outside.empty();
  return c;
}

Quotable quotable(const Decrypted& d) {
  Quotable q;
  const auto& v = d.view;
  const bool several = v.segments.size() > 1;
  for (const auto& seg : v.segments) {
    const bool decrypted = seg.kind == reader::Segment::Kind::decrypted;
    // Per segment: only a part whose integrity was checked may ever be quoted.
    if (decrypted && seg.integrity != reader::Segment::Integrity::checked) {
      q.left_out.push_back("an encrypted part without integrity protection");
      continue;
    }
    if (seg.format == mail::BodyFormat::html) {
      q.left_out.push_back(decrypted ? "an encrypted HTML part" : "a clear HTML part");
      continue;
    }
    if (seg.format != mail::BodyFormat::plain || seg.text.empty())
      continue;
    if (!q.text.empty())
      q.text += "\n";
    if (several)
      q.text += decrypted ? "[encrypted part]\n" : "[part sent in the clear]\n";
    q.text += seg.text;
    if (q.text.back() != '\n')
      q.text += '\n';
  }
  return q;
}

mail::Draft new_draft(keys::KeyStore& keys, const auth::User& user) {
  mail::Draft d;
  d.from = {user.name, user.email};
  d.technology = technology_for(keys, user.email);
  return d;
}

Derived derive_draft(keys::KeyStore& keys, const Reading& read, const auth::User& user, Derive how,
                     QuoteAnswer answer) {
  const mail::ParsedMessage& m = read.envelope;
  Derived out;
  mail::Draft& d = out.draft;
  d.from = {user.name, user.email};
  // Answer from the address the message came to, when it is one of ours.
  for (const auto* list : {&m.to, &m.cc})
    for (const auto& a : *list)
      for (const auto& e : user.emails)
        if (util::ascii_lower(a.address) == util::ascii_lower(e))
          d.from.address = e;
  d.to = answer_recipients(m, how);
  if (how == Derive::reply) {
    d.subject = with_prefix("Re:", m.subject);
    if (mail::valid_message_id(m.message_id)) {
      d.in_reply_to = m.message_id;
      d.references = {m.message_id};
    }
  } else {
    d.subject = with_prefix("Fwd:", m.subject);
  }

  if (!read.encrypted) {
    d.technology = technology_for(keys, d.from.address);
    out.state = QuoteState::clear;
    put_text(d, m, how, m.text_format == mail::BodyFormat::plain ? m.text : "");
    return out;
  }
  d.original_encrypted = true;
  d.encrypt = true;
  d.technology =
      m.protection == mail::Protection::pgp_mime || m.protection == mail::Protection::pgp_inline
          ? mail::Technology::openpgp
          : mail::Technology::smime;
  if (!read.decrypted) {
    out.state = QuoteState::not_quoted;
    out.reasons.push_back(
        "The original is encrypted and its text is not quoted: " + read.not_decrypted + ".");
    return out;
  }
  const Decrypted& dec = *read.decrypted;
  Quotable q = quotable(dec);
  std::vector<mail::Address> all = d.to;
  all.insert(all.end(), d.cc.begin(), d.cc.end());
  QuoteCheck check = check_quote(dec, all, user, how);
  auto quote = [&](mail::DecryptedQuote kind) {
    out.state = QuoteState::quoted;
    d.decrypted_quote = kind;
    if (kind == mail::DecryptedQuote::to_signer)
      d.quote_signer = m.from.address;
    put_text(d, m, how, q.text);
  };
  if (answer == QuoteAnswer::no) {
    out.state = QuoteState::not_quoted;
    out.reasons.push_back("You chose to start without the decrypted text.");
  } else if (q.text.empty()) {
    out.state = QuoteState::not_quoted;
    std::string what;
    for (const auto& l : q.left_out)
      what += (what.empty() ? "" : ", ") + l;
    out.reasons.push_back("Nothing of the encrypted message can be quoted" +
                          (what.empty() ? std::string(".") : " (left out: " + what + ")."));
  } else if (answer == QuoteAnswer::yes) {
    quote(mail::DecryptedQuote::confirmed);
  } else if (check.without_asking) {
    quote(mail::DecryptedQuote::to_signer);
  } else {
    out.state = QuoteState::ask;
    out.pending = q.text;
    out.reasons = check.reasons;
    for (const auto& l : q.left_out)
      out.reasons.push_back("Left out of the quote: " + l + ".");
  }
  return out;
}

std::vector<std::string> unapproved_recipients(const mail::Draft& draft, const auth::User& user) {
  std::vector<std::string> out;
  if (draft.decrypted_quote != mail::DecryptedQuote::to_signer)
    return out;
  const std::string signer = util::ascii_lower(draft.quote_signer);
  for (const auto& r : mail::recipients(draft)) {
    if ((!signer.empty() && util::ascii_lower(r) == signer) || is_own(user, r))
      continue;
    out.push_back(r);
  }
  return out;
}

}  // namespace wmk::webflow
