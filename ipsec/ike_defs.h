/*
 * IKEv2 protocol constants (RFC 7296 and the IANA "IKEv2 Parameters"
 * registry), kept together in one header.
 */
#ifndef ESPROXY_IKE_DEFS_H
#define ESPROXY_IKE_DEFS_H

#define IKE_HDR_LEN             28
#define IKE_PAYLOAD_HDR_LEN     4
#define IKE_VERSION             0x20    /* major 2, minor 0 */
#define IKE_MSG_MAX             65535   /* the header's 32-bit length, capped to UDP */
#define IKE_NON_ESP_MARKER_LEN  4

/* exchange types */
#define IKE_SA_INIT             34
#define IKE_AUTH                35
#define IKE_CREATE_CHILD_SA     36
#define IKE_INFORMATIONAL       37

/* header flags */
#define IKE_FLAG_INITIATOR      0x08
#define IKE_FLAG_VERSION        0x10
#define IKE_FLAG_RESPONSE       0x20

/* payload types */
#define IKE_PL_NONE             0
#define IKE_PL_SA               33
#define IKE_PL_KE               34
#define IKE_PL_IDI              35
#define IKE_PL_IDR              36
#define IKE_PL_CERT             37
#define IKE_PL_CERTREQ          38
#define IKE_PL_AUTH             39
#define IKE_PL_NONCE            40
#define IKE_PL_NOTIFY           41
#define IKE_PL_DELETE           42
#define IKE_PL_VENDOR           43
#define IKE_PL_TSI              44
#define IKE_PL_TSR              45
#define IKE_PL_SK               46
#define IKE_PL_CP               47
#define IKE_PL_EAP              48
#define IKE_PL_SKF              53

#define IKE_PL_CRITICAL         0x80

/* notify message types: errors */
#define IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD  1
#define IKE_N_INVALID_IKE_SPI               4
#define IKE_N_INVALID_MAJOR_VERSION         5
#define IKE_N_INVALID_SYNTAX                7
#define IKE_N_INVALID_MESSAGE_ID            9
#define IKE_N_INVALID_SPI                   11
#define IKE_N_NO_PROPOSAL_CHOSEN            14
#define IKE_N_INVALID_KE_PAYLOAD            17
#define IKE_N_AUTHENTICATION_FAILED         24
#define IKE_N_SINGLE_PAIR_REQUIRED          34
#define IKE_N_NO_ADDITIONAL_SAS             35
#define IKE_N_TS_UNACCEPTABLE               38
#define IKE_N_INVALID_SELECTORS             39
#define IKE_N_TEMPORARY_FAILURE             43
#define IKE_N_CHILD_SA_NOT_FOUND            44
#define IKE_N_ERROR_MAX                     16383

/* notify message types: status */
#define IKE_N_INITIAL_CONTACT               16384
#define IKE_N_NAT_DETECTION_SOURCE_IP       16388
#define IKE_N_NAT_DETECTION_DESTINATION_IP  16389
#define IKE_N_COOKIE                        16390
#define IKE_N_USE_TRANSPORT_MODE            16391
#define IKE_N_REKEY_SA                      16393
#define IKE_N_ESP_TFC_PADDING_NOT_SUPPORTED 16394
#define IKE_N_NON_FIRST_FRAGMENTS_ALSO      16395
#define IKE_N_IKEV2_FRAGMENTATION_SUPPORTED 16430
#define IKE_N_SIGNATURE_HASH_ALGORITHMS     16431

/* security protocol ids */
#define IKE_PROTO_IKE           1
#define IKE_PROTO_AH            2
#define IKE_PROTO_ESP           3

/* transform types and ids */
#define IKE_TRANS_ENCR          1
#define IKE_TRANS_PRF           2
#define IKE_TRANS_INTEG         3
#define IKE_TRANS_DH            4
#define IKE_TRANS_ESN           5

#define IKE_ENCR_AES_CBC                12
#define IKE_ENCR_AES_GCM_16             20
#define IKE_ENCR_CHACHA20_POLY1305      28
#define IKE_PRF_HMAC_SHA2_256           5
#define IKE_PRF_HMAC_SHA2_384           6
#define IKE_INTEG_NONE                  0
#define IKE_INTEG_HMAC_SHA2_256_128     12
#define IKE_DH_MODP2048                 14
#define IKE_DH_ECP256                   19
#define IKE_DH_CURVE25519               31
#define IKE_ESN_NO                      0
#define IKE_ESN_YES                     1

#define IKE_ATTR_KEY_LENGTH             14
#define IKE_ATTR_TV                     0x8000

/* identification types */
#define IKE_ID_IPV4_ADDR        1
#define IKE_ID_FQDN             2
#define IKE_ID_RFC822_ADDR      3
#define IKE_ID_KEY_ID           11

/* authentication methods */
#define IKE_AUTH_RSA_SIG        1
#define IKE_AUTH_PSK            2
#define IKE_AUTH_DIGITAL_SIG    14

/* traffic selectors */
#define IKE_TS_IPV4_ADDR_RANGE  7
#define IKE_TS_IPV4_LEN         16

#define IKE_NONCE_MIN           16
#define IKE_NONCE_MAX           256

#endif
