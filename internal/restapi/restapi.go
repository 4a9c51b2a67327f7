// Package restapi holds the verifier's REST wire types: the JSON bodies of
// AAS (/aas/v1) and HVS (/hvs/v2) shared by the servers that serve them and
// the clients that call them (tcctl, the attestation manager).
//
// It carries no behaviour and imports only the standard library and the
// model packages whose types travel inside the bodies (flavors, token
// claims), so a client that speaks the API links none of the servers.
// Field names are the wire format: change them only with a new API version.
package restapi
