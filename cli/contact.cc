// webmailkey contact import LOGIN FILE|- [--email ADDR]...
// webmailkey contact list [LOGIN] | show ID | delete ID | lookup LOGIN ADDR
//
// Correspondents' public keys and certificates, bound to addresses (core/contacts).
#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/table.h"
#include "core/contacts/contacts.h"
#include "core/contacts/keydata.h"
#include "core/util/fs.h"
#include "core/util/json.h"
#include "core/util/timefmt.h"

namespace wmk::cli {

namespace {

Result<std::string> read_key_data(const std::string& path) {
  if (path == "-")
    return util::read_all(STDIN_FILENO, contacts::kMaxKeyDataBytes + 1);
  auto data = util::read_file(path);
  if (!data)
    return make_error(data.code(), "cannot read the key file: " + data.error().message);
  return data;
}

std::string when(const std::optional<std::int64_t>& t) {
  return t ? util::format_utc(*t) : "never";
}

std::string bindings_text(const contacts::ContactKey& k) {
  std::string out;
  for (const auto& b : k.bindings)
    out += (out.empty() ? "" : ", ") + b.email + " (" + bindings::source_name(b.source) + ")";
  return out.empty() ? "(none)" : out;
}

void write_contact(util::JsonWriter& w, const contacts::ContactKey& k) {
  w.begin_object()
      .field("id", k.id)
      .field("login", k.login)
      .field("type", keys::key_type_name(k.type))
      .field("fingerprint", k.fingerprint)
      .field("algorithm", k.algorithm)
      .field("created", k.created);
  w.key("expires");
  if (k.expires)
    w.value(*k.expires);
  else
    w.null();
  w.field("revoked", k.revoked)
      .field("state", contacts::key_state_name(k.state))
      .field("imported", k.imported)
      .field("updated", k.updated)
      .key("user_ids")
      .begin_array();
  for (const auto& u : k.user_ids)
    w.value(u);
  w.end_array().key("bindings").begin_array();
  for (const auto& b : k.bindings) {
    w.begin_object()
        .field("email", b.email)
        .field("source", bindings::source_name(b.source))
        .field("first_seen", b.first_seen)
        .field("last_seen", b.last_seen)
        .end_object();
  }
  w.end_array().end_object();
}

void print_contact_json(const contacts::ContactKey& k) {
  util::JsonWriter w;
  write_contact(w, k);
  std::cout << w.str() << "\n";
}

void print_contact_text(const contacts::ContactKey& k) {
  auto row = [](const char* label, const std::string& value) {
    std::cout << label << std::string(14 - std::string(label).size(), ' ') << value << "\n";
  };
  row("id", std::to_string(k.id));
  row("login", k.login);
  row("type", keys::key_type_name(k.type));
  row("fingerprint", k.fingerprint);
  row("algorithm", k.algorithm);
  row("created", util::format_utc(k.created));
  row("expires", when(k.expires));
  row("state", std::string(contacts::key_state_name(k.state)) +
                   (k.state == contacts::KeyState::usable
                        ? ""
                        : std::string(": ") + contacts::key_state_words(k.state)));
  for (const auto& u : k.user_ids)
    row("user id", u + "  (as its owner wrote it; binds nothing)");
  for (const auto& b : k.bindings) {
    row("bound to", b.email + " — " + bindings::source_name(b.source) + ": " +
                        bindings::source_words(b.source) + "; first seen " +
                        util::format_utc(b.first_seen) + ", last seen " +
                        util::format_utc(b.last_seen));
  }
}

Result<std::int64_t> parse_id(const std::string& text) {
  try {
    std::size_t used = 0;
    long long v = std::stoll(text, &used);
    if (used == text.size() && v > 0)
      return static_cast<std::int64_t>(v);
  } catch (const std::exception&) {
  }
  return make_error(Errc::invalid_argument, "ID is the number `contact list` shows, not " + text);
}

// Opens the app and runs fn with a ContactStore.
template <class Fn>
void with_contacts(Context& ctx, Fn fn) {
  auto a = open_app(ctx);
  if (!a)
    return;
  keys::KeyStore keys(a->db, a->config, *a->clock);
  contacts::ContactStore store(*a, keys);
  fn(store);
}

void done(Context& ctx, const Result<contacts::ContactKey>& k, const char* verb) {
  if (!k)
    return report(ctx, k.error());
  if (ctx.json)
    return print_contact_json(*k);
  std::cout << verb << " " << keys::key_type_name(k->type) << " key " << k->fingerprint
            << " as contact " << k->id << " of " << k->login << ", bound to " << bindings_text(*k)
            << "\n";
  if (k->state != contacts::KeyState::usable)
    std::cout << "note: it cannot be used to encrypt: " << contacts::key_state_words(k->state)
              << "\n";
}

void register_import(CLI::App& cmd, Context& ctx) {
  struct Args {
    std::string login, file;
    std::vector<std::string> emails;
  };
  auto args = std::make_shared<Args>();
  auto* sub = cmd.add_subcommand(
      "import",
      "import a correspondent's OpenPGP public key (armored or binary) or S/MIME certificate "
      "(PEM or DER) for a user and bind it to addresses");
  sub->add_option("LOGIN", args->login, "the user whose directory gets the key")->required();
  sub->add_option("FILE", args->file, "the key file, or - for stdin")->required();
  sub->add_option("--email", args->emails,
                  "bind the key to this address (repeatable); default: the one address the key "
                  "carries");
  sub->callback([&ctx, args] {
    auto data = read_key_data(args->file);
    if (!data)
      return report(ctx, data.error());
    with_contacts(ctx, [&](contacts::ContactStore& store) {
      contacts::ImportRequest r;
      r.emails = args->emails;
      done(ctx, store.import(args->login, *data, r), "imported");
    });
  });
}

// with_contacts(), for the contact key that the ID argument names.
template <class Fn>
void with_contact(Context& ctx, const std::string& id, Fn fn) {
  auto n = parse_id(id);
  if (!n)
    return report(ctx, n.error());
  with_contacts(ctx, [&](contacts::ContactStore& store) {
    auto k = store.get(*n);
    if (!k)
      return report(ctx, k.error());
    fn(store, *k);
  });
}

void register_list(CLI::App& cmd, Context& ctx) {
  auto login = std::make_shared<std::optional<std::string>>();
  auto* sub = cmd.add_subcommand("list", "list every user's contact keys, or one user's");
  sub->add_option("LOGIN", *login, "only this user's");
  sub->callback([&ctx, login] {
    with_contacts(ctx, [&](contacts::ContactStore& store) {
      auto list = store.list(*login);
      if (!list)
        return report(ctx, list.error());
      print_listing(ctx.json, *list, write_contact, "no contact keys",
                    {"ID", "LOGIN", "TYPE", "FINGERPRINT", "EXPIRES", "STATE", "BOUND TO"},
                    [](const contacts::ContactKey& k) {
                      return std::vector<std::string>{
                          std::to_string(k.id), k.login,         keys::key_type_name(k.type),
                          k.fingerprint,        when(k.expires), contacts::key_state_name(k.state),
                          bindings_text(k)};
                    });
    });
  });
}

void register_show(CLI::App& cmd, Context& ctx) {
  auto id = std::make_shared<std::string>();
  auto* sub = cmd.add_subcommand("show", "show one contact key");
  sub->add_option("ID", *id, "the id `contact list` shows")->required();
  sub->callback([&ctx, id] {
    with_contact(ctx, *id, [&](contacts::ContactStore&, const contacts::ContactKey& k) {
      if (ctx.json)
        print_contact_json(k);
      else
        print_contact_text(k);
    });
  });
}

void register_delete(CLI::App& cmd, Context& ctx) {
  auto id = std::make_shared<std::string>();
  auto* sub = cmd.add_subcommand("delete", "delete a contact key and its bindings");
  sub->add_option("ID", *id, "the id `contact list` shows")->required();
  sub->callback([&ctx, id] {
    with_contact(ctx, *id, [&](contacts::ContactStore& store, const contacts::ContactKey& k) {
      if (auto st = store.remove(k.id); !st.ok())
        return report(ctx, st.error());
      if (ctx.json) {
        util::JsonWriter w;
        w.begin_object().field("deleted", k.id).field("fingerprint", k.fingerprint).end_object();
        std::cout << w.str() << "\n";
        return;
      }
      std::cout << "deleted contact " << k.id << " (" << k.fingerprint << ") of " << k.login
                << "\n";
    });
  });
}

void register_lookup(CLI::App& cmd, Context& ctx) {
  struct Args {
    std::string login, address;
  };
  auto args = std::make_shared<Args>();
  auto* sub = cmd.add_subcommand(
      "lookup",
      "look an address up by WKD (HTTPS, the address's own domain) and import the key "
      "for the user, bound to that address only");
  sub->add_option("LOGIN", args->login, "the user whose directory gets the key")->required();
  sub->add_option("ADDR", args->address, "the correspondent's address")->required();
  sub->callback([&ctx, args] {
    with_contacts(ctx, [&](contacts::ContactStore& store) {
      done(ctx, store.lookup_wkd(args->login, args->address), "found by WKD and imported");
    });
  });
}

}  // namespace

void register_contact(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("contact", "correspondents' public keys and certificates");
  cmd->require_subcommand(1);
  register_import(*cmd, ctx);
  register_list(*cmd, ctx);
  register_show(*cmd, ctx);
  register_delete(*cmd, ctx);
  register_lookup(*cmd, ctx);
}

}  // namespace wmk::cli
