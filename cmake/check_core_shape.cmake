# The shape of core/ (docs/architecture.md, "Module dependencies" and "Who writes which
# table"), checked after webmailkey_core is built (cmake -P):
#   -DROOT=/path/to/source   the tree whose core/ is read
# 1. Each module of core includes only the modules below it (the lists below, in
#    this order): in particular core/app (config + store + clock, opened) includes
#    nothing that includes it, so the app <-> keys loop cannot come back; core/keys
#    does not include core/app (KeyStore takes the store, the config and the clock);
#    and bindings, mail, reader, contacts come in that order, so none of their old
#    loops (mail <-> contacts, bindings <-> contacts, contacts -> reader -> bindings
#    -> contacts) can come back. core/setup (init, fsck, store migrate) sits on top:
#    only the entry points include it.
# 2. Each table is written (INSERT, UPDATE, DELETE) by its owning module only; a table
#    with no owner here is refused too. core/store itself (the migrations, the copy
#    between engines) is exempt: it writes whatever the schema has.
# Fails (and so fails the build) naming the file and the include or the statement.

# module: the other modules it may include. Every module of core but setup is listed;
# a module added to core/ is not checked until it is listed here.
set(allowed_util "")
set(allowed_config "util")
set(allowed_store "util")
set(allowed_crypto "util")
set(allowed_net "util")
set(allowed_audit "store;util")
set(allowed_session "audit;config;crypto;store;util")
set(allowed_app "config;store;util")
set(allowed_auth "app;audit;config;crypto;net;session;store;util")
set(allowed_keys "audit;auth;config;crypto;net;session;store;util")
set(allowed_grant "app;audit;auth;config;crypto;keys;net;session;store;util")
set(allowed_bindings "app;audit;auth;config;crypto;keys;net;session;store;util")
set(allowed_mail "app;audit;auth;bindings;config;crypto;keys;net;session;store;util")
set(allowed_reader "app;audit;auth;bindings;config;crypto;keys;mail;net;session;store;util")
set(allowed_contacts
    "app;audit;auth;bindings;config;crypto;keys;mail;net;reader;session;store;util")
set(allowed_webflow
    "app;audit;auth;bindings;config;contacts;crypto;grant;keys;mail;net;reader;session;store;util")
# Modules that no other core module may include.
set(top_modules "setup")

# table: its owning module.
set(owner_users auth)
set(owner_user_emails auth)
set(owner_auth_failures auth)
set(owner_sessions session)
set(owner_audit audit)
set(owner_mail_index mail)
set(owner_mail_folder_state mail)
set(owner_deliveries mail)
set(owner_keys keys)
set(owner_key_emails keys)
set(owner_grants grant)
set(owner_contact_keys contacts)
set(owner_contact_bindings contacts)
set(owner_contact_signers contacts)

if(NOT ROOT)
  message(FATAL_ERROR "check_core_shape.cmake: -DROOT= is required")
endif()
file(GLOB_RECURSE files RELATIVE "${ROOT}" "${ROOT}/core/*.h" "${ROOT}/core/*.cc")
list(SORT files)

set(problems "")
foreach(rel IN LISTS files)
  if(NOT rel MATCHES "^core/([a-z_]+)/")
    continue()
  endif()
  set(module "${CMAKE_MATCH_1}")

  file(STRINGS "${ROOT}/${rel}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"core/")
  foreach(line IN LISTS includes)
    if(line MATCHES "\"core/([a-z_]+)/" AND NOT CMAKE_MATCH_1 STREQUAL module)
      list(FIND top_modules "${CMAKE_MATCH_1}" at)
      if(NOT at EQUAL -1)
        string(APPEND problems
               "\n  ${rel}: core/${CMAKE_MATCH_1} is for the entry points only: ${line}")
      endif()
    endif()
  endforeach()

  if(DEFINED allowed_${module})
    file(STRINGS "${ROOT}/${rel}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"core/")
    foreach(line IN LISTS includes)
      if(line MATCHES "\"core/([a-z_]+)/" AND NOT CMAKE_MATCH_1 STREQUAL module)
        list(FIND allowed_${module} "${CMAKE_MATCH_1}" at)
        if(at EQUAL -1)
          string(APPEND problems
                 "\n  ${rel}: core/${module} may not include core/${CMAKE_MATCH_1}: ${line}")
        endif()
      endif()
    endforeach()
  endif()

  if(module STREQUAL "store" OR NOT rel MATCHES "\\.cc$")
    continue()
  endif()
  file(READ "${ROOT}/${rel}" text)
  # Comments may say "UPDATE" in prose: drop // comments first.
  string(REGEX REPLACE "//[^\n]*" "" text "${text}")
  string(REGEX MATCHALL "(INSERT([ \t\r\n]+OR[ \t\r\n]+[A-Z]+)?[ \t\r\n]+INTO|UPDATE|DELETE[ \t\r\n]+FROM)[ \t\r\n]+[a-z_]+"
         writes "${text}")
  foreach(w IN LISTS writes)
    string(REGEX MATCH "[a-z_]+$" table "${w}")
    string(REGEX REPLACE "[ \t\r\n]+" " " w "${w}")
    if(NOT DEFINED owner_${table})
      string(APPEND problems "\n  ${rel}: `${w}`: the table ${table} has no owner in "
                             "cmake/check_core_shape.cmake (and docs/architecture.md)")
    elseif(NOT owner_${table} STREQUAL module)
      string(APPEND problems "\n  ${rel}: `${w}`: ${table} belongs to core/${owner_${table}}; "
                             "ask that module instead")
    endif()
  endforeach()
endforeach()

if(problems)
  message(FATAL_ERROR "core/ is out of shape (docs/architecture.md):${problems}")
endif()
