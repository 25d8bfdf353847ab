# cmake -P SignBpfPackage.cmake: the `bpf-package` target's steps (tools/CMakeLists.txt).
#   -DDNSPROXYCTL=path -DMINISIGN=path -DOUT=repository dir -DKEY_DIR=dir for a development key
#   -DSECRET_KEY=minisign secret key (empty: the development key in KEY_DIR, made if missing)
#   -DPUBLIC_KEY=its public key (with SECRET_KEY)
# Writes the package, signs it with minisign and verifies it with dnsproxyctl, as an operator
# would before publishing it.
if(SECRET_KEY STREQUAL "")
  set(SECRET_KEY ${KEY_DIR}/dnsproxy-dev.key)
  set(PUBLIC_KEY ${KEY_DIR}/dnsproxy-dev.pub)
  if(NOT EXISTS ${SECRET_KEY})
    file(MAKE_DIRECTORY ${KEY_DIR})
    # -W: no password on the development key (never use one like it for a published package).
    execute_process(COMMAND ${MINISIGN} -G -W -p ${PUBLIC_KEY} -s ${SECRET_KEY}
                    OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
    message(STATUS "made a development signing key: ${SECRET_KEY}")
  endif()
elseif(PUBLIC_KEY STREQUAL "")
  message(FATAL_ERROR "DNSPROXY_SIGNING_KEY needs DNSPROXY_SIGNING_PUBKEY (to verify the result)")
endif()
execute_process(COMMAND ${DNSPROXYCTL} bpf package --out ${OUT}
                OUTPUT_VARIABLE artifact OUTPUT_STRIP_TRAILING_WHITESPACE
                COMMAND_ERROR_IS_FATAL ANY)
file(REMOVE ${artifact}.minisig)
execute_process(COMMAND ${MINISIGN} -S -s ${SECRET_KEY} -m ${artifact} -t "dnsproxy dns_steer package"
                OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${DNSPROXYCTL} bpf verify ${artifact} --key ${PUBLIC_KEY}
                COMMAND_ERROR_IS_FATAL ANY)
message(STATUS "package: ${artifact} (+ .minisig), public key ${PUBLIC_KEY}")
