// Share links of slots: admin routes and the public share page's routes (modules/share).
export {};
