import { render } from 'preact';
import { App } from './app.js';
import { takeToken } from './session.js';
import './styles.css';

takeToken();

render(<App />, document.getElementById('app') as HTMLElement);
