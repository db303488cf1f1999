// What jsdom lacks for the app's components: it lays nothing out, so the
// history list gets a height (to render rows) and a ResizeObserver that
// reports it once. Imported by every component test file.
globalThis.ResizeObserver ??= class {
  constructor(private callback: ResizeObserverCallback) {}
  observe(target: Element) {
    this.callback([{ target } as ResizeObserverEntry], this as unknown as ResizeObserver);
  }
  unobserve() {}
  disconnect() {}
};
Object.defineProperty(HTMLElement.prototype, 'clientHeight', { configurable: true, get: () => 600 });
