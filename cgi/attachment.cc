// /attachment
//   GET  id, part, folder (default INBOX) → the decoded part as a download: the type
//        libmagic sees in the bytes (never the sender's claim), Content-Disposition
//        attachment with a safe file name, nosniff and a sandboxing CSP, so it is never
//        shown inline. 404 for an unknown folder, message or part.
#include "cgi/common/guard.h"
#include "cgi/common/mailbox.h"
#include "core/mail/mime.h"

namespace wmk::cgi {

namespace {

Response attachment(Context& ctx) {
  auto folder = folder_param(ctx.request);
  auto uid = ctx.request.field("id").value_or("");
  auto part = ctx.request.field("part").value_or("");
  if (!folder || !mail::valid_uid(uid) || part.empty())
    return error_response(404, "There is no such attachment.", ctx.viewer());
  auto box = UserMailbox::open(ctx.app, ctx.mailboxes, ctx.live_session());
  if (!box)
    return mailbox_error(box.error(), ctx.viewer());
  auto raw = (*box)->mailbox().read(*folder, uid);
  if (!raw) {
    if (raw.code() == Errc::not_found || raw.code() == Errc::invalid_argument)
      return error_response(404, "There is no such message; it may have been moved or deleted.",
                            ctx.viewer());
    if (raw.code() == Errc::unsupported)
      return error_response(413, "This message is too large to open here.", ctx.viewer());
    if (raw.code() == Errc::io)
      return mailbox_error(raw.error(), ctx.viewer());
    throw std::runtime_error("reading a message failed: " + raw.error().message);
  }
  auto content = mail::part_content(*raw, part);
  if (!content)
    return error_response(404, "This message has no such attachment.", ctx.viewer());
  Response r =
      Response::download(std::move(content->bytes), content->sniffed_type, content->filename);
  return r;
}

}  // namespace

}  // namespace wmk::cgi

int main() {
  using namespace wmk::cgi;
  Program program{
      .name = "attachment", .methods = {"GET"}, .access = Access::session, .secrets = {}};
  return run(program, attachment);
}
