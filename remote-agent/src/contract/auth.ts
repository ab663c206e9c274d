// End-user sign-in: public sign-in routes, and admin routes for sign-in settings, invites, sessions and the audit log (modules/auth, modules/audit).
export {};
